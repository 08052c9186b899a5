"""Framework adapters. The only package (with ``core.zoo``) that imports torch."""
