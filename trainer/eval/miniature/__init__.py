"""Table 5 (and Table 4) in miniature: referring expressions over synthetic shape scenes, the files a
user's REC evaluation reads (665K conversations, `refer` pickles + COCO instances, COCO captions), an
LM warm-up of the tiny LLM, and the orchestration of stage 1 and stage 2 runs (`prepare_miniature`)."""
