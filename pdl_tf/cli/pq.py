"""pdl-pq: score panoptic predictions in COCO panoptic format (JSON + PNG)
against ground truth, as panopticapi's script does, with every field of
both JSONs checked against its PNG.

Prints PQ / SQ / RQ for All, Things and Stuff and per class (with the
categories' names) and, with --output, writes them as JSON. Needs no
TensorFlow (numpy and PIL).
"""

import json
import os

from pdl_tf.cli.shared import checks
from pdl_tf.cli.shared import common

CROWD_RULES = ('union', 'panopticapi')  # = panoptic_quality.CROWD_RULES


def build_parser():
  parser = common.new_parser(
      'pdl-pq', 'Score panoptic predictions in COCO panoptic format (JSON + '
      'PNGs) against ground truth: PQ / SQ / RQ for All, Things, Stuff and '
      'per class.')
  parser.add_argument('--gt_json', required=True,
                      help='ground-truth panoptic JSON (annotations, '
                           'categories with isthing)')
  parser.add_argument('--gt_folder', required=True,
                      help='folder of the ground-truth PNGs')
  parser.add_argument('--pred_json', required=True,
                      help='predictions JSON: one annotation per '
                           'ground-truth image, same image_id')
  parser.add_argument('--pred_folder', required=True,
                      help='folder of the predicted PNGs')
  parser.add_argument('--crowd_rule', choices=CROWD_RULES, default='union',
                      help='the crowd region with several crowd segments of '
                           'a category in an image: their union, or the one '
                           "listed last in segments_info (panopticapi's "
                           'rule, its numbers bit for bit)')
  parser.add_argument('--output', default=None, metavar='FILE',
                      help='also write the results as JSON to FILE')
  parser.add_argument('--num_workers', type=int, default=0,
                      help='threads (0: min(4, CPU cores))')
  return parser


def check(args):
  """The four inputs exist, --output can be written (nothing read or
  written yet)."""
  checks.existing_file(args.gt_json, '--gt_json')
  checks.existing_dir(args.gt_folder, '--gt_folder')
  checks.existing_file(args.pred_json, '--pred_json')
  checks.existing_dir(args.pred_folder, '--pred_folder')
  if args.num_workers < 0:
    raise checks.UsageError(f'--num_workers must be >= 0, got '
                            f'{args.num_workers}.')
  if args.output:
    if os.path.isdir(args.output):
      raise FileExistsError(f'--output {args.output!r} is a folder; name a '
                            'file.')
    checks.output_dir(os.path.dirname(os.path.abspath(args.output)),
                      '--output')


def table(result, names, isthing):
  """The printed table: splits first, then one row per category."""
  width = max([len(n) for n in names.values()] + [8])
  lines = [f'{"":<{width}}  {"PQ":>6} {"SQ":>6} {"RQ":>6} {"N":>5}']
  for split in ('All', 'Things', 'Stuff'):
    row = result[split]
    lines.append(f'{split:<{width}}  {100 * row["pq"]:6.2f} '
                 f'{100 * row["sq"]:6.2f} {100 * row["rq"]:6.2f} '
                 f'{row["n"]:5d}')
  lines.append('')
  lines.append(f'{"id":>6} {"category":<{width}}  kind   {"PQ":>6} '
               f'{"SQ":>6} {"RQ":>6}')
  for category, row in result['per_class'].items():
    lines.append(f'{category:>6} {names.get(category, ""):<{width}}  '
                 f'{"thing" if isthing[category] else "stuff"}  '
                 f'{100 * row["pq"]:6.2f} {100 * row["sq"]:6.2f} '
                 f'{100 * row["rq"]:6.2f}')
  return '\n'.join(lines)


def main(args):
  check(args)
  # pylint: disable=g-import-not-at-top
  import tqdm
  from pdl_tf.data.formats import errors
  from pdl_tf.evaluation import coco_panoptic
  # pylint: enable=g-import-not-at-top
  progress = lambda results, total: tqdm.tqdm(
      results, total=total, desc='pq', unit='image', dynamic_ncols=True)
  try:
    result = coco_panoptic.pq_compute(
        args.gt_json, args.pred_json, args.gt_folder, args.pred_folder,
        num_workers=args.num_workers or None, crowd_rule=args.crowd_rule,
        progress=progress)
  except ValueError as e:  # bad files: one line naming file and segment
    raise errors.DatasetError(str(e)) from e
  with open(args.gt_json, encoding='utf-8') as f:
    categories = json.load(f)['categories']
  names = {c['id']: str(c.get('name', c['id'])) for c in categories}
  isthing = {c['id']: c['isthing'] for c in categories}
  print(table(result, names, isthing))
  print(f'crowd rule: {args.crowd_rule}')
  if args.output:
    report = {'crowd_rule': args.crowd_rule,
              **{split: result[split] for split in ('All', 'Things',
                                                    'Stuff')},
              'per_class': [{'category_id': c, 'name': names[c],
                             'isthing': isthing[c], **row}
                            for c, row in result['per_class'].items()]}
    os.makedirs(os.path.dirname(os.path.abspath(args.output)),
                exist_ok=True)
    with open(args.output, 'w', encoding='utf-8') as f:
      json.dump(report, f, indent=2)
    print(f'results written to {args.output}')
  return 0


entry_point = common.entry_point_for(main, build_parser)

if __name__ == '__main__':
  entry_point()
