"""Stage-1 data: the committed shards of a PAD build streamed as samples, masks turned into token sets."""
