"""Stage-2 data: LLaVA-665K conversations, templates, their index, order, stream, samples and checks."""
