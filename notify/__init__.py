"""The notify process: drains the store's outbox to people (Apprise), a webhook and MQTT.

The appliance only writes events; a trigger adds their outbox rows in the same transaction
(see ``appliance/migrations.py`` M004). This process is the only one that talks to mail servers,
brokers and webhooks, so a slow or dead receiver never slows the door.
"""
