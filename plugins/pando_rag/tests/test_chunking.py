from hypothesis import given, settings
from hypothesis import strategies as st
from pando_rag.chunking import chunk_text


def test_short_text_is_one_chunk_and_blank_text_none():
    assert chunk_text("One sentence.", 800, 100) == ["One sentence."]
    assert chunk_text("   \n ", 800, 100) == []


def test_cuts_at_the_last_sentence_end_inside_the_window():
    text = "First sentence here. Second one is longer than that. " * 20
    chunks = chunk_text(text, 120, 20)
    assert all(len(c) <= 120 for c in chunks)
    assert all(c.endswith(".") for c in chunks[:-1])


def test_sentence_ends_inside_double_quotes_are_not_cuts():
    text = 'He said "stop. now. please." and left' + " filler" * 30
    first = chunk_text(text, 60, 10)[0]
    assert first == text[:60].strip()  # no cut inside the quote: a hard cut


def test_overlap_not_smaller_than_size_is_halved():
    chunks = chunk_text("word " * 200, 50, 80)
    assert len(chunks) > 1 and all(len(c) <= 50 for c in chunks)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .!?\"\n")), max_size=3000), st.integers(20, 400), st.integers(0, 500))
def test_always_moves_forward_and_covers_the_text(text, size, overlap):
    chunks = chunk_text(text, size, overlap)
    assert len(chunks) <= len(text) + 1
    assert all(len(c) <= size for c in chunks)
    words = set(text.split())
    assert words <= set(" ".join(chunks).split()) | {""}
