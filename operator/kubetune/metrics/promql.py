"""PromQL text for trial series: selectors and the Objective.query template."""

from kubetune import metric_names


def quote(value: str) -> str:
    """A PromQL string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def trial_selector(metric: str, namespace: str, sweep: str, trial: str | None = None) -> str:
    """kubetune_trial_<metric>{namespace="ns",sweep="s"[,trial="t",pod="t"]}.

    The scrape jobs take these labels from the scraped pod's metadata, never from what it
    exposes; pinning pod to the trial (the trial pod is named after its trial) leaves out any
    other pod of the namespace that labels itself as one of the sweep's trials. A selector
    for the whole sweep cannot say pod == trial: PrometheusSource checks it on each series.
    """
    labels = [f"namespace={quote(namespace)}", f"sweep={quote(sweep)}"]
    if trial is not None:
        labels += [f"trial={quote(trial)}", f"pod={quote(trial)}"]
    return f"{metric_names.trial_metric(metric)}{{{','.join(labels)}}}"


def render_template(template: str, namespace: str, sweep: str, trial: str | None = None) -> str:
    """Objective.query with {namespace}, {sweep} and {trial} filled in.

    Plain replacement rather than str.format: PromQL uses braces for label matchers.
    """
    text = template.replace("{namespace}", namespace).replace("{sweep}", sweep)
    if trial is not None:
        text = text.replace("{trial}", trial)
    return text


def per_trial(template: str) -> bool:
    """The template names one trial, so it is run once per trial."""
    return "{trial}" in template
