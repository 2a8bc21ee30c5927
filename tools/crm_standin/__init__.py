"""Local stand-ins for HubSpot and Salesforce: loopback HTTP servers that implement only the
endpoints Leadstream calls and validate every request against what the vendor published
(``strict``: HubSpot's own generated models; ``vendor/``: Salesforce's documented shapes).

Not the product: ``make demo`` and the tests run them. They inject faults on demand
(``Faults``: 429 with Retry-After, 500, a timeout, a slow answer) and record every
write with the version it carried, so a test sees an older state written over a newer.
"""
