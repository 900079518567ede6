"""subsidy-ledger: decide and post Nanxun vocational skill-upgrade subsidies to an append-only ledger."""

__version__ = "0.1.0"
