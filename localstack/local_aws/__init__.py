"""Control of the local AWS stack: LocalStack in host mode plus the local EMR endpoint.

Run from the project root with ``PYTHONPATH=localstack .venv/bin/python -m local_aws up|down|status``
(the ``make local-*`` targets do exactly that). Deliberately not named ``localstack``: a package of that
name in this repository would shadow the real LocalStack.
"""
