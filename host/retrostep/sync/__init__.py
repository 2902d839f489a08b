"""Session sync with the device over the sync protocol (``docs/sync-protocol.md``).

Transport-agnostic layers, none of which imports a BLE library:

* :mod:`.protocol_client`: :class:`ProtocolClient`, every protocol operation over any
  link with ``mtu``, ``async write(bytes)`` and an async stream of notifications;
* :mod:`.pull`: :func:`pull_sessions`, a whole sync (authenticate, set the clock, fetch
  every session resumably, verify, acknowledge) into any :class:`SessionSink`;
* :mod:`.loopback`: :class:`LoopbackLink`, an in-process link to a device-side server
  that can drop at any packet (tests, the benchmark model);
* :mod:`.errors`: :class:`SyncError` and its subclasses.

The codec itself (UUIDs, framing, HMAC, bodies) is the firmware's
``retrostep_core.sync_protocol``: one copy for both sides.
"""
