"""The AI assistant: investigations over the fleet under the same policy and approvals."""
