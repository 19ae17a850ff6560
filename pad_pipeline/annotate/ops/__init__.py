"""Pure, typed numeric functions (RLE, boxes, NMS), each tested against an independent reference."""
