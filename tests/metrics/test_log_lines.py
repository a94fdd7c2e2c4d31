"""The log parser: Katib's default filter, user filters, JSON lines, steps, hostile lines."""

import json

import pytest

from kubetune.metrics.log_lines import (
    KATIB_DEFAULT_FILTER,
    MAX_LINE_BYTES,
    MAX_METRIC_NAMES,
    FilterError,
    LogParser,
    compile_filter,
)


def parse(text: str, **options: object) -> LogParser:
    parser = LogParser(**options)  # type: ignore[arg-type]
    parser.feed(text.encode())
    parser.finish()
    return parser


def latest(parser: LogParser) -> dict[str, tuple[int, float]]:
    return {name: (m.step, m.value) for name, m in parser.metrics.items()}


def test_the_default_filter_is_katibs() -> None:
    # kubeflow/katib pkg/metricscollector/v1beta1/common/const.go, DefaultFilter.
    assert KATIB_DEFAULT_FILTER == r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"


@pytest.mark.parametrize(
    ("line", "name", "value"),
    [
        # The examples in Katib's own comment on DefaultFilter.
        ("loss=0.3", "loss", 0.3),
        ("accuracy=.98", "accuracy", 0.98),
        ("Score=-7.53e-05", "Score", -7.53e-05),
        ("Score=-7.53e+05", "Score", -7.53e05),
        ("Score=1E0", "Score", 1.0),
        ("Score=1.23E10", "Score", 1.23e10),
        ("Validation-accuracy = 0.9", "Validation-accuracy", 0.9),
        ("2026-01-01 INFO epoch 3: loss=+2", "loss", 2.0),
    ],
)
def test_katib_default_filter_examples(line: str, name: str, value: float) -> None:
    reading = parse(line).reading(name)
    assert reading is not None and reading.evaluation(name) == (1, value)


def test_several_pairs_on_a_line_and_words_that_are_no_numbers() -> None:
    parser = parse("loss=0.5 accuracy=0.8 optimizer=adam note = nan lr=inf\n")
    assert latest(parser) == {"loss": (1, 0.5), "accuracy": (1, 0.8)}


def test_a_user_filter_takes_name_then_value() -> None:
    parser = parse("metric loss is 0.25\nmetric acc is 0.5\n", filter=r"metric (\w+) is (\S+)")
    assert latest(parser) == {"loss": (1, 0.25), "acc": (1, 0.5)}


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("(only_one)", "two groups"),
        (r"(?=a)(b)(c)", "not an RE2"),
        ("(a" * 600, "at most 1024"),
    ],
)
def test_unusable_filters_are_refused(pattern: str, why: str) -> None:
    with pytest.raises(FilterError, match=why):
        compile_filter(pattern)


def test_a_backtracking_bomb_runs_in_linear_time() -> None:
    # (a+)+$ takes exponential time in Python's re on a long run of a's then b: RE2 does not.
    parser = parse("a" * 50_000 + "b=1\n", filter=r"((a+)+)=(\d)")
    assert parser.lines == 1


def test_json_lines_numeric_fields_are_metrics() -> None:
    lines = [
        {"step": 10, "eval_loss": 0.7, "lr": 1e-4, "tag": "x", "ok": True, "nested": {"a": 1}},
        {"step": 20, "eval_loss": 0.5},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\nnot json\n[1, 2]\n"
    parser = parse(text, format="json")
    assert latest(parser) == {"eval_loss": (20, 0.5), "lr": (10, 1e-4)}


def test_json_non_finite_and_oversized_numbers_are_ignored() -> None:
    text = '{"loss": NaN}\n{"loss": Infinity}\n{"loss": 1e999}\n{"loss": ' + "9" * 400 + "}\n"
    assert parse(text, format="json").metrics == {}


def test_step_from_the_default_keys_and_sticky_for_later_lines() -> None:
    parser = parse("epoch=3\nloss=0.4\nepoch=4 loss=0.3 acc=0.9\nstep=500 epoch=5 loss=0.2\n")
    # step wins over epoch on one line; epoch is a step, not a metric.
    assert latest(parser) == {"loss": (500, 0.2), "acc": (4, 0.9)}
    assert parser.max_step == 500


def test_a_named_step_key() -> None:
    parser = parse("iteration=7 epoch=1 loss=0.4\n", step_key="iteration")
    assert latest(parser) == {"epoch": (7, 1.0), "loss": (7, 0.4)}


def test_zero_based_epochs_count_from_one() -> None:
    parser = parse("epoch=0 loss=0.9\nepoch=1 loss=0.8\n")
    assert latest(parser) == {"loss": (2, 0.8)}
    reading = parser.reading("loss")
    assert reading is not None and reading.evaluation("loss") == (2, 0.8)


def test_position_steps_count_each_metrics_reports() -> None:
    parser = LogParser()
    seen = []
    for line in ["loss=0.9", "acc=0.1", "loss=0.8", "loss=0.7"]:
        parser.feed(line.encode() + b"\n")
        reading = parser.reading("loss")
        assert reading is not None
        seen.append(reading.evaluation("loss"))
    assert seen == [(1, 0.9), (1, 0.9), (2, 0.8), (3, 0.7)]
    assert latest(parser)["acc"] == (1, 0.1)


def test_chunks_split_anywhere_give_the_same_reports() -> None:
    text = b"epoch=1 loss=0.5\nepoch=2 loss=0.4\nloss=0.3\n"
    whole = LogParser()
    whole.feed(text)
    for size in (1, 2, 5, 7):
        parser = LogParser()
        for start in range(0, len(text), size):
            parser.feed(text[start : start + size])
        assert latest(parser) == latest(whole)
        assert parser.consumed == len(text)


def test_a_line_is_read_only_once_complete() -> None:
    parser = LogParser()
    parser.feed(b"loss=0.5\nloss=0.")
    assert latest(parser) == {"loss": (1, 0.5)}
    parser.feed(b"25\n")
    assert latest(parser) == {"loss": (2, 0.25)}
    parser.feed(b"loss=0.125")
    parser.finish()  # the container ended: the last line counts without its newline
    assert latest(parser) == {"loss": (3, 0.125)}


def test_over_long_lines_are_skipped_whole() -> None:
    parser = LogParser()
    parser.feed(b"loss=0.9\n")
    parser.feed(b"loss=0.1 " + b"x" * MAX_LINE_BYTES)
    parser.feed(b"x" * 1000 + b" loss=0.2\nloss=0.8\n")
    assert latest(parser) == {"loss": (2, 0.8)}
    assert parser.lines == 3
    assert len(parser._partial) == 0


def test_distinct_names_are_bounded() -> None:
    text = " ".join(f"m{i}={i}" for i in range(MAX_METRIC_NAMES * 3))
    assert len(parse(text).metrics) == MAX_METRIC_NAMES


def test_only_wanted_names_are_kept_by_their_series_key() -> None:
    parser = parse(
        '{"val/loss": 0.3, "junk": 1, "eval.f1": 0.5}\n',
        format="json",
        wanted=["val/loss", "eval.f1"],
    )
    reading = parser.reading("val/loss")
    assert reading is not None
    assert reading.value("val/loss") == 0.3 and reading.value("eval.f1") == 0.5
    assert reading.value("junk") is None


def test_reading_carries_the_objectives_step() -> None:
    parser = parse("step=5 loss=0.5\nstep=9 lr=0.1\n")
    reading = parser.reading("loss")
    assert reading is not None
    assert reading.step == 9 and reading.eval_step == 5
    assert reading.evaluation("loss") == (5, 0.5)
    assert LogParser().reading("loss") is None


def test_non_utf8_bytes_do_not_break_the_line() -> None:
    parser = LogParser()
    parser.feed(b"\xff\xfe loss=0.5 \xc3\n")
    assert latest(parser) == {"loss": (1, 0.5)}
