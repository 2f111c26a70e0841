"""Image generation backends of `text_to_image`: one small adapter per provider protocol."""
