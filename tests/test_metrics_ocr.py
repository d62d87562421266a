from evaluation.metrics.ocr import Norm, aggregate, anls, cer, corpus_cer, ned, score


def test_cer_and_ned_values():
    assert cer("abc", "abc") == 0
    assert cer("abd", "abc") == 1 / 3
    assert cer("abcabc", "abc") == 1.0
    assert cer("", "") == 0 and cer("x", "") == 1
    assert ned("abd", "abcd") == 1 / 4
    assert ned("abcabc", "abc") == 0.5
    assert ned("", "") == 0
    assert corpus_cer([("a", "ab"), ("xyz", "xyz")]) == 1 / 5


def test_normalisation_options():
    assert Norm(spaces="collapse", ignore_case=True)("  A  b\tC ") == "a b c"
    assert Norm()("A  b") == "A  b"
    # PaddleOCR's RecMetric default drops every space; is_filter keeps ASCII alnum, lowercased
    assert Norm.paddleocr()("a b  c") == "abc"
    assert Norm.paddleocr(is_filter=True)("Héllo, W0rld!") == "hllow0rld"


def test_aggregate_reports_paddleocr_names():
    rows = [score("abc", "abc"), score("abd", "abc")]
    agg = aggregate(rows)
    assert agg["exact_match"] == 0.5
    assert agg["norm_edit_dis"] == 1 - (0 + 1 / 3) / 2
    assert agg["corpus_cer"] == 1 / 6


def test_anls_threshold_and_folding():
    assert anls("Total 9.0", "TOTAL  9.00") == 0.9  # casefolded, spaces collapsed: 1 edit in 10
    assert anls("abcd", "abxy") == 0.0  # NED 0.5 is not under the threshold
    assert anls("abcd", "abcx") == 0.75 and anls("", "") == 1.0
