"""What the tests share, in one place, so no test module imports from another.

- ``database``: the migrated template database that each test gets a copy of.
- ``factories``: tiny CIFAR-10 archives and experiments in the database.
- ``pages``: reading the app's HTML and posting its forms as a browser does.
- ``clients``: in-process clients of the app (anonymous, signed in, with a token).
- ``polling``: waiting on a condition with a deadline, never a fixed sleep.
- ``servers``: real server processes (`cifarlab up`, or web and workers one by one).
- ``processes``: what a server started, and whether it still runs, as /proc shows it.
- ``settings``: clearing what was cached from CIFARLAB_* variables after a test changes one.
- ``seed_reports``: the original study's classification reports, kept in tests/fixtures.
"""
