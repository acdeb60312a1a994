"""Helpers used by one notebook each (data prep, tables, figures, widgets); one module per lesson."""
