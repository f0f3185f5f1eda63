"""What the services truly share: problem+json errors, logging, Kafka client settings."""
