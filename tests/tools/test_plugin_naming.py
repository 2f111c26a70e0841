from assistd.tools.plugins.naming import MAX_NAME, function_name


def test_names_are_plugin_and_operation() -> None:
    assert function_name("weather") == "weather"
    assert function_name("weather", "getForecast") == "weather__getForecast"
    assert function_name("weather", "get /v1/forecast") == "weather__get_v1_forecast"


def test_long_names_are_cut_and_kept_apart() -> None:
    first = function_name("p", "a" * 100 + "x")
    second = function_name("p", "a" * 100 + "y")
    assert len(first) == len(second) == MAX_NAME and first != second
