from inference.metrics.ocr import cer, corpus_cer, ned, normalize


def test_cer_and_ned_values():
    assert cer("abc", "abc") == 0
    assert cer("abd", "abc") == 1 / 3
    assert cer("abcabc", "abc") == 1.0
    assert cer("", "") == 0 and cer("x", "") == 1
    assert ned("abd", "abcd") == 1 / 4
    assert corpus_cer([("a", "ab"), ("xyz", "xyz")]) == 1 / 5


def test_normalisation_options():
    assert normalize("  A  b\tC ", collapse_spaces=True, ignore_case=True) == "a b c"
    assert normalize("A  b") == "A  b"
