"""The line front end: telnet, nc and the bundled client speak it over TCP."""
