# dqn-tune study 'll_v3': trial 35, objective 45696.5
# (score 45,696 env steps; 3/3 seeds stopped (45,696, 69,888, 29,568)). Its values:
#   policy.learn.learning_rate = 0.0007998365746012937
#   policy.learn.batch_size = 256
#   policy.learn.update_per_collect = 32
#   policy.collect.n_sample = 64
#   policy.learn.target_update_freq = 50
#   policy.nstep = 3
#   policy.discount_factor = 0.99
#   policy.other.eps.decay = 11675
#   policy.model.encoder_hidden_size_list = [512, 64]
#   policy.model.dueling = True
#   policy.eval.evaluator.eval_freq = 2000
# Train it with: dqn-train --config this_file
from easydict import EasyDict

inf, nan = float('inf'), float('nan')

main_config = EasyDict({'exp_name': 'lunarlander_v3_dqn_tuned',
 'env': {'env_id': 'LunarLander-v3',
         'collector_env_num': 8,
         'evaluator_env_num': 8,
         'n_evaluator_episode': 16,
         'stop_value': 220},
 'policy': {'cuda': False,
            'model': {'obs_shape': 8,
                      'action_shape': 4,
                      'encoder_hidden_size_list': [512, 64],
                      'dueling': True},
            'discount_factor': 0.99,
            'nstep': 3,
            'learn': {'update_per_collect': 32,
                      'batch_size': 256,
                      'learning_rate': 0.0007998365746012937,
                      'target_update_freq': 50},
            'collect': {'n_sample': 64, 'unroll_len': 1},
            'eval': {'evaluator': {'eval_freq': 2000}},
            'other': {'eps': {'type': 'exp',
                              'start': 1.0,
                              'end': 0.05,
                              'decay': 11675},
                      'replay_buffer': {'replay_buffer_size': 100000}}},
 'dqnkit': {'max_env_steps': 400000,
            'save_freq': 2000,
            'keep_periodic': 3,
            'stop_min_return': 100}})

create_config = EasyDict({'env_manager': {'type': 'base'}, 'policy': {'type': 'dqn'}})
