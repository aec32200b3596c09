"""The pure core: task states, upload capabilities, task planning. No I/O anywhere below here."""
