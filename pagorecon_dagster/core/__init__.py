"""Money and Lima time: the two things every other module must get exactly right."""
