"""The dashboard's sections; each renders a `Dashboard` value and emits what the user asked for."""
