"""Developer tooling beside the product: the local stack, the demo, the traffic generator
and the one process launcher the tests, the fault harness, the bench and the demo share.

``python -m tools --help`` lists the commands. Nothing in ``stream_app`` imports this
package (``tests/unit/test_purity.py`` checks): the product and its image run without it.
"""
