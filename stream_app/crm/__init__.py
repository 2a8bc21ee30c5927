"""``crm-sync``: each lead's newest stage and scores into HubSpot or Salesforce (docs/crm.md).

``changes`` (pure): a batch of records -> the newest change per lead, and the
version guard; ``fields`` (pure): a change -> the CRM's properties or fields;
``hubspot`` and ``salesforce``: the calls, through the vendors' own clients;
``service``: the consumer that ties them together; ``webhooks`` (pure): the
CRMs' notifications -> ``sales_feedback`` events (served by ``collect``).
"""
