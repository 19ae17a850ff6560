"""The training side of PAD: stage-1 patch-aligned projector pretraining (`pad pretrain`) and stage-2
instruction tuning (`pad sft`), one loop (`trainer.loop`) driving either stage.

Pure modules (`trainer.models`, `trainer.data`, `trainer.losses`, `trainer.schedule`) never import
DeepSpeed or Ray; `trainer.engine` owns DeepSpeed and `trainer.launch` owns Ray Train.
"""
