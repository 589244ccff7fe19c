"""The IRC front end: IRC clients in the same rooms (channels) as telnet and web users.

A thin adapter like ``lines`` and ``web``: ``message`` parses and writes IRC lines,
``render`` turns room events into the IRC lines others see, ``protocol`` is one
connection (registration, commands, numerics) talking to the shared ``Session`` and
``Chat``, ``factory`` its fan-out and registry, ``support`` the capabilities and ISUPPORT
tokens the server announces. See docs/irc.md.
"""
