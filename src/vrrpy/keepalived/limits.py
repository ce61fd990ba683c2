"""The bounds that keep a hostile keepalived.conf from costing unbounded time or memory.

keepalived has almost none: an include loop runs until it has no file
descriptors left, ``$A=${A}`` makes it spin forever, and ``~SEQ`` will
happily produce millions of lines. The importer reads files that may come
from anywhere, so every way the input can grow has a ceiling here, and going
past one is a :class:`~vrrpy.keepalived.model.KeepalivedParseError` naming
the limit. The values are far above any configuration we know of (the
largest real ones are a few thousand statements) and low enough that the
worst input is refused in a couple of seconds and a few hundred MB at most.
"""

from __future__ import annotations

MAX_FILE_BYTES = 8 * 1024 * 1024
"""Largest single file read (8 MiB): the file is refused before it is read
when it is larger, so a 50 MB file or ``/dev/zero`` costs nothing."""

MAX_TOTAL_BYTES = 32 * 1024 * 1024
"""Largest sum of all files read through ``include`` (32 MiB)."""

MAX_FILES = 1024
"""Most files opened in one parse (a glob may match many; a file included
twice counts twice)."""

MAX_INCLUDE_DEPTH = 32
"""Deepest nesting of ``include`` (keepalived has no limit: it nests until
``open`` fails with EMFILE)."""

MAX_GLOB_ENTRIES = 100_000
"""Most directory entries the wildcards of all include lines may look at:
``include /*/*/*/*/*`` is a valid line that would walk the whole file system."""

MAX_LINE_BYTES = 1023
"""Longest physical line, in bytes, without its newline. keepalived reads
lines into a 1024-byte buffer (``MAXBUF``): 2.2.7 silently cuts a longer line
into pieces that it parses as separate lines; 2.4 ignores it with an error.
The parser ignores it too and records a ``long-line`` problem."""

MAX_EXPANDED_LINE = 1023
"""Longest line after ``$NAME`` substitution. keepalived stops substituting
when a line would reach ``MAXBUF`` and parses the half-substituted line; the
parser raises instead, since what keepalived would then run is an accident
(and a definition that grows on every substitution ends here)."""

MAX_DEFINITION_LENGTH = 1024 * 1024
"""Longest multi-line definition, in characters (1 MiB; a templated instance
is a few hundred)."""

MAX_SUBSTITUTIONS_PER_LINE = 1024
"""Most substitutions on one line. A definition that expands to itself without
growing (``$A=${A}``) makes keepalived loop forever; here it is an error."""

MAX_MULTILINE_NESTING = 64
"""Deepest nesting of multi-line definitions being expanded (one that names
itself would otherwise nest without end)."""

MAX_SEQUENCE_NESTING = 32
"""Most ``~SEQ`` / ``~LST`` blocks active at once (they nest when a line
holds several, or a sequence line starts another)."""

MAX_LINES = 250_000
"""Most logical lines produced after every include, sequence and multi-line
definition is expanded: this bounds the time of a parse whatever the
expansions do (exponential growth through nested definitions included)."""

MAX_STATEMENTS = 150_000
"""Most statements in the tree, which bounds its memory."""

MAX_BLOCK_DEPTH = 32
"""Deepest nesting of ``{ }`` blocks (keepalived's deepest is about 5), so that
code walking the tree recursively stays far from Python's recursion limit."""
