"""The LocalStack process's entry point: LocalStack's own ``main``, after emptying its CORS allow-list.

LocalStack answers cross-origin requests from its web app's origins (``app.localstack.cloud``, …) and
from pages on its own host and port, and the list cannot be emptied by configuration (only extended by
``EXTRA_CORS_ALLOWED_ORIGINS``). A local data lake has no web app: with the list empty, LocalStack's
CORS enforcer answers 403 to every request that carries an ``Origin`` (or only a ``Referer``), so no page
in the developer's browser can write to S3 or publish to SNS. SDKs and the AWS CLI send neither header.
``localstack_server.environment`` adds the settings that complete it (no CORS response headers at all,
S3 under the same enforcer). Run by ``.venv-localstack``'s Python, as a file: this folder is not on its
path.
"""

from localstack.aws.handlers import cors

cors.ALLOWED_CORS_ORIGINS.clear()  # the enforcer reads this list object at every request
cors._ALLOWED_INTERNAL_DOMAINS.clear()  # and these for S3-website / CloudFront origins on its own host

from localstack.runtime.main import main  # noqa: E402 - after the list is emptied

if __name__ == "__main__":
    main()
