"""``vrrpy drill CONFIG``: a failover drill of the user's own configuration, in a namespace lab.

Two routers run the user's instances (with their priorities), a client probes
the virtual addresses and watches its neighbour table, and the classic
failures happen one after the other: a planned switchover, a crash, a link
failure, a tracked script failing, a split brain and its heal, a flood of bad
adverts. Each is printed as the client lived it, beside what RFC 9568 and
the user's settings predict, with the settings that would shorten it.

The pieces: :mod:`~vrrpy.drill.source` reads the file (vrrpyd TOML, or a
keepalived.conf through the importer), :mod:`~vrrpy.drill.plan` maps it to
the lab, :mod:`~vrrpy.drill.lab` builds the namespaces and the failures,
:mod:`~vrrpy.drill.watch` is the client's eyes, :mod:`~vrrpy.drill.measure`
turns its records into figures, :mod:`~vrrpy.drill.predict` and
:mod:`~vrrpy.drill.advice` say what to expect and what to change,
:mod:`~vrrpy.drill.scenarios` runs it all and :mod:`~vrrpy.drill.report`
prints it. Needs root, iproute2 and nftables; leaves nothing behind.
"""
