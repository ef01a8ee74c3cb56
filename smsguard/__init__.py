"""smsguard: the command line and process wiring around the screening engine."""
