"""Multi-objective searchers: registry, initial design, seeding, asynchrony, NSGA-II, local search, BO, MO-ASHA."""
from __future__ import annotations

import datetime
import functools

import numpy as np
import pytest
import torch
from pymoo.indicators.hv import HV
from syne_tune.backend.trial_status import Trial
from syne_tune.config_space import choice, finrange, logordinal, lograndint, loguniform, ordinal, randint, uniform
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler
from syne_tune.optimizer.schedulers.multiobjective.multiobjective_priority import NonDominatedPriority
from syne_tune.util import dump_json_with_numpy

from baselines.searchers import (
    SEARCHERS,
    AskTellSearch,
    ConfigEncoder,
    make_scheduler,
    non_dominated,
    searcher_names,
)
from baselines.searchers.bayesian import FeatureMap
from baselines.searchers.priority import NonDominatedRank

METRICS = ("valid_error", "param_fraction")
CATS = ["x", "y", "z"]
POWERS = [1, 2, 4, 8]
SPACE = {
    "a": randint(0, 20),
    "b": randint(0, 10),
    "c": choice(CATS),
    "d": choice([0, 1]),
    "e": ordinal(POWERS),
    "f": uniform(0.0, 1.0),
    "g": loguniform(1e-4, 1e-1),
    "const": 7,
}
LARGEST = {"a": 20, "b": 10, "c": "z", "d": 1, "e": 8, "f": 1.0, "g": 0.1}
SMALLEST = {"a": 0, "b": 0, "c": "x", "d": 0, "e": 1, "f": 0.0, "g": 1e-4}
MIDPOINT = {"a": 10, "b": 5, "c": "y", "d": 0, "e": 2, "f": 0.5, "g": 0.003}
DESIGN = [LARGEST, SMALLEST, MIDPOINT]
SINGLE_FIDELITY = searcher_names("weight-sharing")
BAYESIAN = ["ehvi", "lsbo", "rsbo"]
STEPS = 15


def unit_vector(config: dict) -> np.ndarray:
    """The toy config mapped to [0, 1]^7."""
    return np.array(
        [
            config["a"] / 20,
            config["b"] / 10,
            CATS.index(config["c"]) / 2,
            config["d"],
            POWERS.index(config["e"]) / 3,
            config["f"],
            np.log(config["g"] / 1e-4) / np.log(1e3),
        ]
    )


def zdt1(config: dict) -> dict[str, float]:
    """ZDT1 on the toy space: both minimised; the front is f2 = 1 - sqrt(f1) where all but ``a`` are 0."""
    u = unit_vector(config)
    g = 1.0 + 9.0 * u[1:].mean()
    return {"valid_error": float(u[0]), "param_fraction": float(g * (1.0 - np.sqrt(u[0] / g)))}


def objectives(history) -> np.ndarray:
    return np.array([[r[m] for m in METRICS] for _, _, r in history])


def hypervolume(Y: np.ndarray) -> float:
    return float(HV(ref_point=np.array([1.1, 7.0]))(Y))


def hyperparameters(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "const"}


def fresh_run(name: str, seed: int, steps: int, **kwargs) -> AskTellSearch:
    search = AskTellSearch(make_scheduler(name, SPACE, METRICS, DESIGN, random_seed=seed, **kwargs))
    for _ in range(steps):
        search.evaluate(zdt1)
    return search


@functools.lru_cache(maxsize=None)
def cached_run(name: str, seed: int) -> AskTellSearch:
    return fresh_run(name, seed, STEPS)


# ------------------------------------------------------------------------------------------------- registry
def test_registry_lists_every_searcher_with_metadata():
    assert set(SEARCHERS) == {"random_search", "morea", "local_search", "nsga2", "ehvi", "lsbo", "rsbo", "moasha"}
    assert [n for n, s in SEARCHERS.items() if s.supports_multi_fidelity] == ["moasha"]
    assert [n for n, s in SEARCHERS.items() if s.standard_nas_only] == ["moasha"]
    assert "moasha" not in SINGLE_FIDELITY and len(SINGLE_FIDELITY) == 7


def test_bad_requests_name_the_valid_choices():
    with pytest.raises(ValueError, match="valid names") as err:
        make_scheduler("nsga3", SPACE)
    assert all(name in str(err.value) for name in SEARCHERS)
    with pytest.raises(ValueError, match="only works for standard NAS") as err:
        make_scheduler("moasha", SPACE, mode="weight-sharing")
    assert "ehvi" in str(err.value) and "'moasha'" in str(err.value)
    with pytest.raises(ValueError, match="mode must be one of"):
        make_scheduler("ehvi", SPACE, mode="supernet")
    with pytest.raises(ValueError, match="at least two metrics"):
        make_scheduler("ehvi", SPACE, metrics=["valid_error"])
    with pytest.raises(ValueError, match="same thing"):
        make_scheduler("moasha", SPACE, resource_attr="epoch", time_attr="st_worker_time")


@pytest.mark.parametrize("name", list(SEARCHERS))
def test_schedulers_are_tuner_ready(name):
    scheduler = make_scheduler(name, SPACE, METRICS, DESIGN, random_seed=0)
    assert isinstance(scheduler, TrialScheduler)
    assert scheduler.metric_names() == list(METRICS)
    assert scheduler.metric_mode() == "min"
    assert '"metric_names"' in dump_json_with_numpy(scheduler.metadata())


# ---------------------------------------------------------------------------- every single-fidelity searcher
@pytest.mark.parametrize("name", SINGLE_FIDELITY)
def test_initial_design_first_then_valid_configs(name):
    history = cached_run(name, 0).history
    assert len(history) == STEPS
    assert [hyperparameters(c) for _, c, _ in history[:3]] == DESIGN
    for _, config, _ in history:
        assert config["const"] == 7
        for key, domain in SPACE.items():
            if key != "const":
                assert domain.is_valid(config[key]), (key, config[key])
                assert type(config[key]) is domain.value_type
    # Not a constant stream: the searcher explores beyond the initial design.
    assert len({tuple(sorted(hyperparameters(c).items())) for _, c, _ in history}) >= STEPS - 2


@pytest.mark.parametrize("name", SINGLE_FIDELITY)
def test_same_seed_same_configs_other_seed_other_configs(name):
    steps = 8 if name in BAYESIAN else STEPS  # MOREA mutates from step 11 on
    first = [c for _, c, _ in cached_run(name, 0).history[:steps]]
    np.random.seed(12345)  # the global RNGs must not matter
    torch.manual_seed(12345)
    again = [c for _, c, _ in fresh_run(name, 0, steps).history]
    other = [c for _, c, _ in fresh_run(name, 1, steps).history]
    assert again == first
    assert other[:3] == first[:3]  # the initial design
    assert other[3:] != first[3:]


@pytest.mark.parametrize("name", SINGLE_FIDELITY)
def test_asynchronous_asks_before_tells(name):
    search = AskTellSearch(make_scheduler(name, SPACE, METRICS, DESIGN, random_seed=3))
    searcher = search.scheduler.searcher
    outstanding = [search.ask() for _ in range(6)]
    if hasattr(searcher, "pending_X"):
        assert len(searcher.pending_X) == 6
    asked = [c for _, c in outstanding]
    for _ in range(5):  # tell the oldest two, ask one more
        for _ in range(2):
            trial_id, config = outstanding.pop(0)
            search.tell(trial_id, config, zdt1(config))
        outstanding.append(search.ask())
        asked.append(outstanding[-1][1])
    for trial_id, config in reversed(outstanding):
        search.tell(trial_id, config, zdt1(config))
    assert search.num_pending == 0 and len(search.history) == 11
    assert [hyperparameters(c) for c in asked[:3]] == DESIGN
    if name != "morea":  # Syne Tune's MOREA may repeat a config; ours never do while new ones exist
        assert len({tuple(sorted(c.items())) for c in asked}) == len(asked)


# ---------------------------------------------------------------------------------------------------- NSGA-II
def test_nsga2_generations_of_ten():
    search = AskTellSearch(make_scheduler("nsga2", SPACE, METRICS, DESIGN, random_seed=0))
    searcher = search.scheduler.searcher
    assert searcher.population_size == 10
    for _ in range(10):
        search.evaluate(zdt1)
    assert searcher.num_generations == 1 and len(searcher.population_X) == 10
    search.evaluate(zdt1)
    assert len(searcher.queue) == 9  # a batch of 10 offspring, one already suggested
    for _ in range(29):
        search.evaluate(zdt1)
    assert searcher.num_generations == 4 and len(searcher.population_X) == 10
    # Survivors are the best of everything seen: no observed point dominates the whole surviving front.
    front = searcher.population_Y[non_dominated(searcher.population_Y)]
    everything = objectives(search.history)
    assert np.allclose(np.sort(front, axis=0)[0], np.sort(everything[non_dominated(everything)], axis=0)[0])


def test_nsga2_breeds_from_partial_results_and_waits_for_a_full_generation():
    search = AskTellSearch(make_scheduler("nsga2", SPACE, METRICS, DESIGN, random_seed=0))
    searcher = search.scheduler.searcher
    outstanding = [search.ask() for _ in range(12)]  # more asks than one population, no result yet
    for trial_id, config in outstanding[:4]:
        search.tell(trial_id, config, zdt1(config))
    outstanding = outstanding[4:] + [search.ask()]
    assert searcher.num_generations == 0 and len(searcher.queue) == 9  # a batch bred from the 4 results
    outstanding += [search.ask() for _ in range(9)]
    for trial_id, config in outstanding[:6]:
        search.tell(trial_id, config, zdt1(config))
    assert searcher.num_generations == 1 and searcher.queue == []  # 10 results: survival, stale offspring dropped
    for trial_id, config in outstanding[6:]:
        search.tell(trial_id, config, zdt1(config))
    asked = [c for _, c, _ in search.history]
    assert len({tuple(sorted(c.items())) for c in asked}) == len(asked) == 22


def test_relaxed_integer_codes_give_both_bounds_their_share():
    encoder = ConfigEncoder({"k": randint(0, 3)})
    low, high = encoder.relaxed_bounds()
    draws = np.random.default_rng(0).uniform(low[0], high[0], size=40_000)
    counts = np.bincount(encoder.repair(draws[:, None])[:, 0].astype(int), minlength=4) / len(draws)
    assert np.allclose(counts, 0.25, atol=0.01), counts


def test_nsga2_offspring_reach_both_inclusive_bounds():
    space = {"k": randint(0, 3), "m": randint(0, 3), "n": randint(0, 3)}

    def trade_off(config):  # every k is Pareto-optimal, so the population keeps spreading over k
        noise = 0.1 * (config["m"] + config["n"])
        return {"valid_error": config["k"] + noise, "param_fraction": 3 - config["k"] + noise}

    search = AskTellSearch(make_scheduler("nsga2", space, METRICS, random_seed=0))
    for _ in range(60):
        search.evaluate(trade_off)
    offspring = [c["k"] for _, c, _ in search.history[10:]]
    assert {0, 3} <= set(offspring)
    assert set(c["m"] for _, c, _ in search.history[10:]) <= {0, 1, 2, 3}


# ----------------------------------------------------------------------------------------------- local search
def test_local_search_mutates_one_key_of_a_pareto_point():
    search = AskTellSearch(make_scheduler("local_search", SPACE, METRICS, DESIGN, random_seed=0))
    for step in range(20):
        history = search.history
        trial_id, config = search.ask()
        if step >= 3:
            front = [hyperparameters(history[i][1]) for i in non_dominated(objectives(history))]
            changed = [sum(p[k] != config[k] for k in p) for p in front]
            assert min(changed) == 1, changed
        search.tell(trial_id, config, zdt1(config))


# ------------------------------------------------------------------------------------------------------- BO
@pytest.mark.parametrize("name", BAYESIAN)
def test_bayesian_searchers_improve_hypervolume(name):
    start = hypervolume(objectives(cached_run(name, 0).history[:3]))
    final = hypervolume(objectives(cached_run(name, 0).history))
    random = hypervolume(objectives(cached_run("random_search", 0).history))
    assert final > start + 0.1, (start, final)
    if name != "lsbo":  # a fixed weighted sum aims at one trade-off only; the others must beat random search
        assert final > random + 0.1, (random, final)


def test_large_binary_space_uses_per_layer_features():
    space = {f"head_{level}_{h}": choice([0, 1]) for level in range(2) for h in range(4)}
    space.update({f"unit_{level}_{u}": choice([0, 1]) for level in range(2) for u in range(80)})
    encoder = ConfigEncoder(space)
    features = FeatureMap(encoder, max_features=64)
    assert len(features.groups) == 4
    config = {k: int(k.startswith("unit_1_") or k == "head_0_0") for k in space}
    assert np.allclose(features(encoder.encode(config)), [[0.25, 0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match="not hyperparameters"):
        FeatureMap(encoder, feature_groups=[["head_9_9"]])

    def size_and_error(config):
        kept = np.mean([v for v in config.values()])
        return {"valid_error": 1.0 - kept + 0.1 * config["head_0_0"], "param_fraction": kept}

    search = AskTellSearch(make_scheduler("ehvi", space, METRICS, random_seed=0))
    for _ in range(6):
        config, _ = search.evaluate(size_and_error)
        assert set(config) == set(space) and set(config.values()) <= {0, 1}


# ------------------------------------------------------------------------------------------- MOREA, MO-ASHA
def test_non_dominated_rank_fixes_syne_tunes_permutation():
    chain = np.array([[5.0, 5.0], [1.0, 1.0], [3.0, 3.0], [2.0, 2.0], [4.0, 4.0]])
    assert NonDominatedPriority()(chain).tolist() == [1, 3, 2, 4, 0]  # Syne Tune 0.16: sorted indices
    assert NonDominatedRank()(chain).tolist() == [4, 0, 2, 1, 3]
    fronts = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    assert sorted(NonDominatedRank()(fronts)[:2]) == [0, 1] and NonDominatedRank()(fronts)[2:].tolist() == [2, 3]
    morea = make_scheduler("morea", SPACE, METRICS, DESIGN, random_seed=0).searcher
    moasha = make_scheduler("moasha", SPACE, METRICS, DESIGN, random_seed=0)
    assert (morea.population_size, morea.sample_size) == (10, 5)
    assert isinstance(morea._multiobjective_priority, NonDominatedRank)
    assert isinstance(moasha.multiobjective_priority, NonDominatedRank)


def run_moasha(seed: int, trials: int = 12) -> tuple[list[dict], list[int]]:
    """Sequential Tuner-free MO-ASHA loop; returns configs and the last epoch each trial ran."""
    scheduler = make_scheduler("moasha", SPACE, METRICS, DESIGN, random_seed=seed)
    configs, last_epochs = [], []
    for trial_id in range(trials):
        config = scheduler.suggest().config
        trial = Trial(trial_id=trial_id, config=config, creation_time=datetime.datetime.now())
        scheduler.on_trial_add(trial)
        final = zdt1(config)
        for epoch in range(1, 6):
            result = {"epoch": epoch, **{m: v + 0.5 / epoch for m, v in final.items()}}
            if scheduler.on_trial_result(trial, result) == SchedulerDecision.STOP:
                scheduler.on_trial_remove(trial)
                break
        configs.append(config)
        last_epochs.append(epoch)
    return configs, last_epochs


def test_moasha_design_rungs_stops_and_seeding():
    configs, last_epochs = run_moasha(seed=0)
    assert [hyperparameters(c) for c in configs[:3]] == DESIGN
    scheduler = make_scheduler("moasha", SPACE, METRICS, DESIGN, random_seed=0)
    assert sorted(level for level, _ in scheduler.brackets[0].rungs) == [1, 3] and len(scheduler.brackets) == 1
    assert set(last_epochs) <= {1, 3, 5}
    assert any(e < 5 for e in last_epochs) and 5 in last_epochs
    np.random.seed(999)
    assert run_moasha(seed=0) == (configs, last_epochs)
    assert run_moasha(seed=1)[0][3:] != configs[3:]


# --------------------------------------------------------------------------------------- ask/tell and encoding
def test_ask_tell_checks_and_caches_results():
    space = {"a": choice([0, 1])}
    calls = []

    def objective(config):
        calls.append(config["a"])
        return {"valid_error": float(config["a"]), "param_fraction": 1.0 - config["a"]}

    search = AskTellSearch(make_scheduler("random_search", space, METRICS, random_seed=0))
    for _ in range(6):
        search.evaluate(objective)
    assert sorted(calls) == [0, 1] and len(search.history) == 6  # repeats were told the cached result
    assert search.seen({"a": 1}) and search.result_of({"a": 1}) == {"valid_error": 1.0, "param_fraction": 0.0}
    trial_id, config = search.ask()
    with pytest.raises(ValueError, match="differs"):
        search.tell(trial_id, {"a": 1 - config["a"]}, objective(config))
    with pytest.raises(ValueError, match="lacks metrics"):
        search.tell(trial_id, config, {"valid_error": 0.0})
    with pytest.raises(ValueError, match="was not asked"):
        search.tell(trial_id + 1, config, objective(config))


def test_encoder_round_trips_every_domain_kind():
    space = {
        **SPACE,
        "h": finrange(0.1, 0.5, 5),
        "i": logordinal([1, 10, 100]),
        "j": lograndint(1, 1000),
    }
    encoder = ConfigEncoder(space)
    assert encoder.keys == [k for k in space if k != "const"]
    codes = encoder.sample(200, np.random.RandomState(0))
    configs = [encoder.decode(x) for x in codes]
    for config in configs:
        assert all(space[k].is_valid(v) for k, v in config.items() if k != "h")
        assert config["h"] in space["h"].values
        assert encoder.decode(encoder.encode(config)) == config
    assert {c["e"] for c in configs} == set(POWERS) and {c["c"] for c in configs} == set(CATS)
    assert min(c["a"] for c in configs) == 0 and max(c["a"] for c in configs) == 20
    # log-uniform: about half the draws below the geometric mid-point
    assert 0.4 < np.mean([c["g"] < np.sqrt(1e-4 * 1e-1) for c in configs]) < 0.6
    with pytest.raises(ValueError, match="lacks hyperparameter"):
        encoder.encode({"a": 1})
    with pytest.raises(ValueError, match="is not a value of"):
        encoder.encode({**configs[0], "b": 11})
