"""ICRLFrozenLakeTrial-v0: a whole trial as one Gymnasium episode (envs/trial.py)."""

import json
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import icrl_bench  # noqa: F401  (registers the ids)
from icrl_bench.envs.trial import TrialEpisodeVectorEnv, make_trial_env, observation_layout

ID = "ICRLFrozenLakeTrial-v0"


def test_the_wrapper_passes_gymnasiums_checker_and_is_registered():
    check_env(make_trial_env(n_episodes=3), skip_render_check=True)
    env = gym.make(ID, base="ICRLFrozenLakeLarge-v0", n_episodes=4)
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (49 + 6,), np.float32)
    assert gym.make(ID, tiles=100).observation_space.shape == (106,)


def test_a_trial_is_one_episode_with_its_inner_boundaries_in_the_observation_and_info():
    env = make_trial_env(n_episodes=5)
    part = observation_layout(env.tiles)
    rng = np.random.default_rng(0)
    for trial in range(3):
        obs, info = env.reset(seed=trial if trial == 0 else None)
        task = info["task_id"]
        assert obs[part["tile"]].sum() == 1 and obs[part["prev_action"]].sum() == 0 and obs[part["inner_ended"]] == 0
        ends, returns, steps, successes = 0, 0.0, 0, 0.0
        while True:
            action = int(rng.integers(4))
            obs, reward, terminated, truncated, info = env.step(action)
            steps += 1
            returns += reward
            assert not truncated
            assert obs[part["prev_action"]].argmax() == action and obs[part["prev_action"]].sum() == 1
            assert obs[part["prev_reward"]][0] == reward
            assert obs[part["inner_ended"]][0] == info["inner_ended"]
            ends += info["inner_ended"]
            successes += reward if info["inner_terminated"] else 0.0
            assert info["inner_episode"] == ends - (1 if terminated else 0)
            if info["inner_ended"] and not terminated:
                assert info["task_id"] == task and info["trial_episode"] == ends  # same task, next inner episode
            if terminated:
                break
        assert ends == 5 and steps >= 5
        assert returns == successes  # the base env's rewards: 1 only on the step that enters a goal


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="unknown base"):
        make_trial_env(base="FrozenLake-v1")
    with pytest.raises(TypeError, match="episodes_per_task"):
        make_trial_env(episodes_per_task=3)
    with pytest.raises(ValueError, match="fewer than this env's 25 tiles"):
        make_trial_env(tiles=10)


@pytest.mark.parametrize("base", ["ICRLFrozenLake-v0", "ICRLFrozenLakeSlippery-v0", "ICRLFrozenLakeNonStationary-v0"])
def test_the_numpy_batched_env_matches_sync_vector_env_step_for_step(base):
    kwargs = {"base": base, "n_episodes": 3 if "NonStationary" not in base else 35}
    fast = gym.make_vec(ID, num_envs=6, vectorization_mode="vector_entry_point", **kwargs)
    sync = gym.make_vec(ID, num_envs=6, vectorization_mode="sync", **kwargs)
    assert isinstance(fast.unwrapped, TrialEpisodeVectorEnv)
    a, _ = fast.reset(seed=7)
    b, _ = sync.reset(seed=7)
    np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(1)
    trials_ended = 0
    for _ in range(1500):
        actions = rng.integers(0, 4, 6)
        out_fast, out_sync = fast.step(actions), sync.step(actions)
        for x, y in zip(out_fast[:4], out_sync[:4]):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(out_fast[4]["inner_episode"], out_sync[4]["inner_episode"])
        trials_ended += int(out_fast[2].sum())
        assert not out_fast[3].any()
    assert trials_ended > 6  # several trials ended and restarted in every run


def test_sb3_contrib_recurrent_ppo_trains_on_it_and_plays_through_evaluate(tmp_path):
    sb3 = pytest.importorskip("sb3_contrib")
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = DummyVecEnv([lambda i=i: make_trial_env(n_episodes=3) for i in range(4)])
    env.seed(0)
    model = sb3.RecurrentPPO("MlpLstmPolicy", env, n_steps=128, batch_size=128, n_epochs=2, seed=0, device="cpu",
                             policy_kwargs={"lstm_hidden_size": 32, "net_arch": [32]})  # fmt: skip
    model.learn(total_timesteps=2048)
    assert model.num_timesteps >= 2048
    model.save(tmp_path / "ppo.zip")
    # The trained policy plays through `icrl-bench evaluate` (the adapter: baselines/recurrent.py).
    out = tmp_path / "results"
    result = subprocess.run(
        [sys.executable, "-m", "icrl_bench.cli", "evaluate", "icrl_bench.baselines.recurrent:sb3_recurrent",
         "--agent-arg", f"path={tmp_path / 'ppo.zip'}", "--suites", "id", "--trials", "2", "--out", str(out),
         "--no-progress"],
        check=False, capture_output=True, text=True, timeout=300, env=os.environ | {"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "results.json").read_text())
    assert summary["summary"]["id"]["trials"] == 2 and 0.0 <= summary["summary"]["id"]["auc"]["value"] <= 1.0


def test_the_adapter_rebuilds_exactly_the_observations_the_trial_env_gave():
    from icrl_bench.baselines.recurrent import TrialPolicyAgent
    from icrl_bench.envs.task import Transition
    from icrl_bench.protocol.agent import TrialInfo

    seen = []

    def policy(x, state, start):  # deterministic in what it sees; counts its own steps as recurrent state
        seen.append((x.copy(), start))
        state = 0 if start else state + 1
        return int((x.argmax() * 7 + state) % 4), state

    env = make_trial_env(n_episodes=4)
    agent = TrialPolicyAgent(policy, env.tiles)
    for trial in range(2):
        obs, _ = env.reset(seed=trial)
        agent.begin_trial(TrialInfo(4, env.tiles, 4, 100, trial))
        terminated, first = False, True
        while not terminated:
            tile = int(obs[: env.tiles].argmax())
            action = agent.act(tile)
            np.testing.assert_array_equal(seen[-1][0], obs)  # what the policy saw through the protocol = the env's
            assert seen[-1][1] == first  # the recurrent state is reset at a trial's first step only
            first = False
            obs, reward, terminated, _, info = env.step(action)
            agent.observe(Transition(tile, action, reward, tile, info["inner_terminated"], info["inner_truncated"]))
        assert sum(start for _, start in seen) == trial + 1


def test_a_returned_terminated_array_is_the_callers_and_a_masked_reset_starts_new_trials_at_once():
    env = TrialEpisodeVectorEnv(4, n_episodes=1)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(200):
        _, _, done, _, info = env.step(rng.integers(0, 4, 4))
        if done.any():
            break
    kept = done.copy()
    fresh, info = env.reset(options={"reset_mask": done})
    np.testing.assert_array_equal(done, kept)  # the env never writes into what it returned
    assert (info["trial_episode"][done] == 0).all() and (fresh[done, env.tiles :].sum(1) == 0).all()



def test_a_mixture_of_trial_envs_plays_exactly_as_its_parts_side_by_side():
    from icrl_bench.envs.trial import TrialMixVectorEnv

    def parts():
        return (TrialEpisodeVectorEnv(3, n_episodes=2, tiles=100),
                TrialEpisodeVectorEnv(2, base="ICRLFrozenLakeNonStationary-v0", n_episodes=4, tiles=100))  # fmt: skip

    mix = TrialMixVectorEnv(parts())
    alone = parts()
    np.testing.assert_array_equal(mix.reset(seed=5)[0], np.concatenate([alone[0].reset(seed=5)[0],
                                                                          alone[1].reset(seed=8)[0]]))  # fmt: skip
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(400):
        actions = rng.integers(0, 4, 5)
        out = mix.step(actions)
        single = [alone[0].step(actions[:3]), alone[1].step(actions[3:])]
        for k in range(4):
            np.testing.assert_array_equal(out[k], np.concatenate([single[0][k], single[1][k]]))
        ended += int(out[2].sum())
    assert ended > 5 and mix.episodes_per_env.tolist() == [2, 2, 2, 4, 4]
    with pytest.raises(ValueError, match="same observation width"):
        TrialMixVectorEnv([TrialEpisodeVectorEnv(1), TrialEpisodeVectorEnv(1, tiles=100)])
