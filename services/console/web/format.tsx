import { timestampDate, type Duration, type Timestamp } from '@bufbuild/protobuf/wkt';

const local = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** A time in the operator's time zone, with UTC on hover; a dash when unset. */
export function Time({ value }: { value: Timestamp | undefined }) {
  if (!value) return <span>—</span>;
  const date = timestampDate(value);
  return (
    <time dateTime={date.toISOString()} title={`${date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}`}>
      {local.format(date)}
    </time>
  );
}

/** A duration as people say it: 45 s, 12 min, 3 h 5 min, 2 d 4 h. */
export function durationText(value: Duration | undefined): string {
  const s = Number(value?.seconds ?? 0n);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** A content-named version shortened for a table cell, whole on hover. */
export const Version = ({ value }: { value: string }) => (value ? <code title={value}>{value.slice(0, 12)}</code> : <span>—</span>);
