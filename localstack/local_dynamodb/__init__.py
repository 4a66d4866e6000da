"""The local DynamoDB endpoint: moto's DynamoDB API over HTTP, on loopback, with the serving table.

Why not LocalStack's DynamoDB: LocalStack runs DynamoDB Local, a Java program it downloads from AWS's
CDN (and a patch agent from GitHub) on first use. Neither is a package registry, so a clean machine here
(and CI) cannot fetch it. moto's DynamoDB is a Python implementation of the same API; where it differs
from DynamoDB, localstack/README.md says so (it never expires TTL items and never throttles).
"""
