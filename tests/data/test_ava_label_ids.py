"""The synthetic AVA's actions are real AVA v2.2 classes: ids and names as the published label map of the
60 evaluated classes (ava_action_list_v2.2_for_activitynet_2019.pbtxt) gives them."""

from __future__ import annotations

from smile.data.ava import read_label_map
from smile.data.ava.synthetic import ACTION_NAMES, FLASH_ID, MOTIONS, write_synthetic_ava
from smile.models.detection import AVA_NUM_POSE

# id -> name of the 60 classes AVA v2.2 evaluates (the ActivityNet 2019 label map)
EVALUATED = {
    1: "bend/bow (at the waist)", 3: "crouch/kneel", 4: "dance", 5: "fall down", 6: "get up", 7: "jump/leap",
    8: "lie/sleep", 9: "martial art", 10: "run/jog", 11: "sit", 12: "stand", 13: "swim", 14: "walk",
    15: "answer phone", 17: "carry/hold (an object)", 20: "climb (e.g., a mountain)",
    22: "close (e.g., a door, a box)", 24: "cut", 26: "dress/put on clothing", 27: "drink",
    28: "drive (e.g., a car, a truck)", 29: "eat", 30: "enter", 34: "hit (an object)", 36: "lift/pick up",
    37: "listen (e.g., to music)", 38: "open (e.g., a window, a car door)", 41: "play musical instrument",
    43: "point to (an object)", 45: "pull (an object)", 46: "push (an object)", 47: "put down", 48: "read",
    49: "ride (e.g., a bike, a car, a horse)", 51: "sail boat", 52: "shoot", 54: "smoke", 56: "take a photo",
    57: "text on/look at a cellphone", 58: "throw", 59: "touch (an object)", 60: "turn (e.g., a screwdriver)",
    61: "watch (e.g., TV)", 62: "work on a computer", 63: "write", 64: "fight/hit (a person)",
    65: "give/serve (an object) to (a person)", 66: "grab (a person)", 67: "hand clap", 68: "hand shake",
    69: "hand wave", 70: "hug (a person)", 72: "kiss (a person)", 73: "lift (a person)",
    74: "listen to (a person)", 76: "push (another person)", 77: "sing to (e.g., self, a person, a group)",
    78: "take (an object) from (a person)", 79: "talk to (e.g., self, a person, a group)", 80: "watch (a person)",
}  # fmt: skip


def test_the_evaluated_list_has_60_classes_and_the_poses_are_ids_1_to_14():
    assert len(EVALUATED) == 60
    assert max(i for i in EVALUATED if i <= AVA_NUM_POSE) == 14  # walk: the last body pose


def test_synthetic_actions_are_evaluated_classes_with_their_real_names(tmp_path):
    assert {i: EVALUATED[i] for i in ACTION_NAMES} == ACTION_NAMES
    assert all(i <= AVA_NUM_POSE for i in MOTIONS.values()) and FLASH_ID > AVA_NUM_POSE  # poses vs. the rest
    written = read_label_map(write_synthetic_ava(tmp_path, 2, 4).label_map)
    assert written == ACTION_NAMES
