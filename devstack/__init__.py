"""The local stack: every service of the orchestrator as a child process of one supervisor.

Used by ``make up`` (profile ``dev``) and by the test suite (profile ``test``). No container
registry is needed: PostgreSQL, Redis and dockerd come from Debian's packages, tusd and MinIO are
built from their Go modules by scripts/install.sh (the same programs compose runs, with the same
tusd flags: ``devstack/tusd.py``), the API and worker are ours.

Entry point: ``python -m devstack up|down|env|images``. Importing this package
connects to nothing and reads no environment.
"""
