"""The Kubernetes wing: the only code that imports ``kubernetes``.

``connection`` (credentials, checks, building a client), ``client`` (the API calls), ``errors``
(what a failure means), ``node_state`` (what a Node object says: labels, managedFields claims),
``rate_limit`` (client-go's token bucket) and ``retry`` (the one retry policy). It knows nothing
about GPUs. Importing this package loads no ``kubernetes`` module: a client does, when built.
"""
