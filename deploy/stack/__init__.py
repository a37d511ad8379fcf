"""The AWS CDK app's stack (stack.py), one module per concern: parameters, network, database,
messaging (queues and topics), storage (buckets and secrets), services (ECS), load balancer and sign-in,
IAM policies. `contract` holds the names shared with the image and the instance files; it imports no
CDK, so the image's tests can read it cheaply."""
