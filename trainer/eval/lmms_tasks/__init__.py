"""lmms-eval task files PAD ships (copied into a task folder by `trainer.eval.lmms_task.write_rec_task`)."""
