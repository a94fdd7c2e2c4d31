"""What an admin allows trial pods to ask for; pure, shared by the builders, `validate` and the operator."""
