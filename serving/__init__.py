"""The serving layer: the promoted model's recommendation lists in DynamoDB, one GetItem per user.

One job per module, boto3/botocore only, importable on Python 3.9 (EMR runs :mod:`serving.load`):

- :mod:`serving.table`: the table as code (key schema, attribute names, CreateTable kwargs,
  ``ensure_table``) and the item encoding of a ranked list;
- :mod:`serving.load`: bulk-write one version's lists (BatchWriteItem, retries with backoff), then mark
  the version loaded after reconciliation;
- :mod:`serving.pointer`: the item naming the live version; switched forward only, rolled back
  explicitly, both conditional writes;
- :mod:`serving.client`: :class:`serving.client.Recommender`, what an application calls;
- :mod:`serving.cli`: ``python -m serving.cli recommend|pointer|rollback|ensure-table``.

docs/serving.md describes the layout, the pointer's rules, TTL and capacity.
"""
