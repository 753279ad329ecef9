"""The broker: routes and checks the events components send each other."""

from kubefox.broker.engine import ANSWERED_FOR, Broker
from kubefox.broker.settings import BrokerSettings

__all__ = ["ANSWERED_FOR", "Broker", "BrokerSettings"]
