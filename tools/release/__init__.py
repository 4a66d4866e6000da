"""Building and deploying to AWS: the code bundle, its wheels, the alarm and the retention rules."""
