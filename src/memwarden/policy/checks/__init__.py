"""The policy's checks across fields, one module per section; policy.validate runs them all."""
