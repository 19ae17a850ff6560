"""The training layer: one loop for every stage (`loop`), the stage protocol and registry (`stage`), DeepSpeed
(`engine`, its only importer), Ray Train (`launch`), checkpoints, schedules, the run log and the driver."""
