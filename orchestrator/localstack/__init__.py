"""The local stack: every service of the orchestrator as a child process of one supervisor.

Used by ``make up`` (profile ``dev``) and by the test suite (profile ``test``). No container
registry is needed: PostgreSQL, Redis and dockerd come from Debian's packages, S3 is SeaweedFS
from PyPI, the TUS server is the tus project's Node.js server, the API and worker are ours.

Entry point: ``python -m orchestrator.localstack up|down|env|images``. Importing this package
connects to nothing and reads no environment.
"""
