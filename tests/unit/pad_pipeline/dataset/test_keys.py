from pad_pipeline.dataset.keys import image_key, unique_keys


def test_keys_are_dot_free_and_readable():
    assert image_key("00000/00000030.jpg") == "00000_00000030_jpg"
    assert "." not in image_key("a.b.c/d e.png")


def test_collisions_are_disambiguated_deterministically():
    ids = ["a/b.jpg", "a_b.jpg", "a/b.jpg", "c.jpg"]
    keys = unique_keys(ids)
    assert len(set(keys)) == 4
    assert keys == unique_keys(ids)
    assert keys[0] == "a_b_jpg" and keys[1] == "a_b_jpg_dup1"
