"""One router per resource; api.main includes each module's ``router``."""
