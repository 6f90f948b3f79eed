# test_nav_layout.py: the navigation tasks draw Safety-Gymnasium's layouts. Safety-Gymnasium's
# reset is redone here in NumPy from its source (utils/random_generator.py, bases/base_task.py,
# builder.py, the task levels): numpy.random.RandomState(seed), the robot then the objects in
# obstacle order, each drawn up to 100 times within its keep-outs, the robot's heading, one
# heading per object, then the task's world update (goal resampled, or a goal button chosen).
# Every position must equal, to the last bit, what tool_nav_layout reports for the C envs.
import json
import math
import os
import subprocess
import sys
from collections import OrderedDict

import numpy as np

TASKS = {
    # id: (extents, agent placement, agent keepout, objects: (layout names, keepout, fixed
    #      locations or None, headings drawn), world update)
    'SafetyPointGoal0': (1.0, None, 0.4, [(['goal'], 0.305, None, 1)], 'goal'),
    'SafetyPointGoal1': (1.5, None, 0.4, [(['goal'], 0.305, None, 1),
                                         ([f'hazard{i}' for i in range(8)], 0.18, None, 8),
                                         (['vase0'], 0.15, None, 1)], 'goal'),
    'SafetyPointGoal2': (2.0, None, 0.4, [(['goal'], 0.305, None, 1),
                                         ([f'hazard{i}' for i in range(10)], 0.18, None, 10),
                                         ([f'vase{i}' for i in range(10)], 0.15, None, 10)],
                         'goal'),
    'SafetyPointButton1': (1.5, None, 0.4, [([f'button{i}' for i in range(4)], 0.2, None, 4),
                                           (['goal'], 0.4, None, 1),
                                           ([f'hazard{i}' for i in range(4)], 0.18, None, 4),
                                           ([f'gremlin{i}' for i in range(4)], 0.4, None, 4)],
                           'button'),
    'SafetyPointPush1': (1.5, None, 0.4, [(['goal'], 0.4, None, 1),
                                         (['hazard0', 'hazard1'], 0.4, None, 2),
                                         (['pillar0'], 0.3, None, 1),
                                         (['push_box'], 0.2, None, 1)], 'goal'),
    'SafetyPointCircle1': (2.0, (-0.8, -0.8, 0.8, 0.8), 0.0,
                           [(['circle'], 0.0, [(0, 0)], 1),
                            (['sigwall0', 'sigwall1'], 0.0, [(1.125, 0), (-1.125, 0)], 2)],
                           None),
}
TASKS['SafetyCarGoal0'] = TASKS['SafetyPointGoal0']
TASKS['SafetyCarGoal1'] = TASKS['SafetyPointGoal1']
TASKS['SafetyCarGoal2'] = TASKS['SafetyPointGoal2']
TASKS['SafetyCarCircle1'] = TASKS['SafetyPointCircle1']

SEEDS = [0, 1, 2, 7, 42, 1000, 123456, 2**31 + 11, 2**32 - 1, 2**32 + 5, 2**40 + 3]


def random_state(seed):
    if seed < 2**32:
        return np.random.RandomState(seed)
    return np.random.RandomState(np.array([seed & 0xffffffff, seed >> 32], dtype=np.uint32))


def reference(task, seed):
    ext, agent_place, agent_keepout, objects, update = TASKS[task]
    extents = (-ext, -ext, ext, ext)
    placements = OrderedDict(agent=(None if agent_place is None else [agent_place],
                                    agent_keepout))
    for names, keepout, locations, _ in objects:
        for i, name in enumerate(names):
            if locations:  # base_task._placements_dict_from_object
                x, y = locations[i]
                k = keepout + 1e-9
                placements[name] = ([(x - k, y - k, x + k, y + k)], keepout)
            else:
                placements[name] = (None, keepout)
    rs = random_state(seed)

    def constrain(p, k):
        return (p[0] + k, p[1] + k, p[2] - k, p[3] - k)

    def draw(place, keepout):  # draw_placement (one rectangle at most here)
        if place is None:
            xmin, ymin, xmax, ymax = constrain(extents, keepout)
        else:
            xmin, ymin, xmax, ymax = constrain(place[0], keepout)
        return np.array([rs.uniform(xmin, xmax), rs.uniform(ymin, ymax)])

    def valid(xy, layout, keepout):
        for other, oxy in layout.items():
            if np.sqrt(np.sum(np.square(xy - oxy))) < placements[other][1] + keepout:
                return False
        return True

    layout = None
    for _ in range(10000):  # build_layout / sample_layout
        trial, ok = {}, True
        for name, (place, keepout) in placements.items():
            for _ in range(100):
                xy = draw(place, keepout)
                if valid(xy, trial, keepout):
                    trial[name] = xy
                    break
            else:
                ok = False
                break
        if ok:
            layout = trial
            break
    assert layout is not None
    agent_rot = rs.uniform(0, 2 * np.pi)
    for _, _, _, n_rot in objects:
        for _ in range(n_rot):
            rs.uniform(0, 2 * np.pi)
    goal_button = 0
    if update == 'goal':  # build_goal_position
        del layout['goal']
        for _ in range(10000):
            xy = draw(*placements['goal'])
            if valid(xy, layout, placements['goal'][1]):
                layout['goal'] = xy
                break
    elif update == 'button':  # build_goal_button: the goal body moves onto the chosen button
        goal_button = int(rs.choice(4))
        layout['goal'] = layout[f'button{goal_button}']
    return layout, agent_rot, goal_button


def main():
    tool = os.path.join(os.environ.get('SRL_BIN_DIR', 'bin'), 'tool_nav_layout')
    failures = 0
    for task in TASKS:
        out = subprocess.run([tool, task] + [str(s) for s in SEEDS], capture_output=True,
                             text=True, check=False)
        if out.returncode != 0:
            print(f'{task}: tool failed: {out.stderr}')
            failures += 1
            continue
        for line, seed in zip(out.stdout.splitlines(), SEEDS):
            got = json.loads(line)
            layout, rot, button = reference(task, seed)
            items = {k.replace('obj', ''): v for k, v in got['items'].items()}
            for name, xy in layout.items():
                if name not in items or items[name][0] != xy[0] or \
                        items[name][1] != xy[1]:
                    print(f'{task} seed {seed}: {name} at {items.get(name)}, expected {list(xy)}')
                    failures += 1
            dyaw = math.remainder(got['agent_yaw'] - rot, 2 * math.pi)
            if abs(dyaw) > 1e-9:
                print(f'{task} seed {seed}: heading {got["agent_yaw"]}, expected {rot}')
                failures += 1
            if TASKS[task][4] == 'button' and got['goal_button'] != button:
                print(f'{task} seed {seed}: goal button {got["goal_button"]}, expected {button}')
                failures += 1
    print(f'{len(TASKS) * len(SEEDS)} layouts compared, {failures} mismatches')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
