-- Facegate central store: a door may only touch its own site.
--
-- A door is a device in the field: assume one can be stolen and its token used directly.
-- What this migration enforces (earlier migrations stay as shipped; this one replaces functions
-- and policies):
--
-- * push_people, per person (each row applies entirely or is refused with a clear error; the door
--   quarantines a refused row with that error):
--   - a new person is created for the calling door's site only;
--   - an existing person may be changed or deleted only when this site's access row is live and
--     no other site has a live one ("its one live site is its own"); a person shared with another
--     site, revoked from this site, or of another site altogether is refused, so a door never
--     restores its own revoked access row, never adds a face that another site's doors would
--     match, and never deletes a person for every site;
--   - a person an admin disabled is never re-activated by a door.
-- * A site whose access was revoked reads only the tombstone: pull_changes sends it the person's
--   id and deleted = true (faces: id, person_id, deleted), and the table policies show persons
--   and faces only through a live access row.
-- * push_events takes the door's name from its device row, never names a person the site has
--   never had (the claim is kept in claimed_person_id, person_id and person_name are left empty),
--   and flags (never drops) an event whose ts is far from the server's clock.
-- * heartbeat refuses a status over 64 KiB.

-- --- who changed a person -------------------------------------------------------------------

alter table public.persons
    add column disabled_by_admin boolean not null default false;
comment on column public.persons.disabled_by_admin is
    'active was last set to false by an admin (not a door): no door may re-activate the person';

-- Persons disabled before this migration by an admin (no device pushed them last) stay so.
-- Triggers off: the backfill is not a change any door needs to pull again.
alter table public.persons disable trigger persons_change;
alter table public.persons disable trigger persons_touch_faces;
update public.persons set disabled_by_admin = true
 where not active and not deleted and updated_by is null;
alter table public.persons enable trigger persons_change;
alter table public.persons enable trigger persons_touch_faces;

-- updated_by was only ever set by push_people, so an admin's later change left the door's id in
-- place. Now every write records its writer: the calling door, or null for an admin.
create function public.facegate_person_writer() returns trigger
language plpgsql set search_path = '' as $$
declare
    dev uuid := public.facegate_my_device_id();
begin
    new.updated_by := dev;
    if new.active then
        new.disabled_by_admin := false;
    elsif tg_op = 'INSERT' or old.active then
        new.disabled_by_admin := dev is null;
    end if;
    return new;
end $$;

-- Fires after persons_change (BEFORE triggers run in name order), which clears active on delete.
create trigger persons_writer before insert or update on public.persons
    for each row execute function public.facegate_person_writer();

-- --- events say what the centre could not vouch for -----------------------------------------

alter table public.access_events
    add column claimed_person_id uuid,
    add column ts_out_of_window boolean not null default false;
comment on column public.access_events.claimed_person_id is
    'a person id the door named that its site has never had; person_id is then left empty';
comment on column public.access_events.ts_out_of_window is
    'ts was more than 5 minutes ahead of or 30 days behind the server clock at received_at';

-- --- read policies: a revoked site sees no person data --------------------------------------

alter policy door_reads_site_persons on public.persons
    using (exists (select 1 from public.person_sites ps
                   where ps.person_id = persons.id
                     and ps.site_id = (select public.facegate_my_site())
                     and not ps.deleted));
alter policy door_reads_site_faces on public.faces
    using (exists (select 1 from public.person_sites ps
                   where ps.person_id = faces.person_id
                     and ps.site_id = (select public.facegate_my_site())
                     and not ps.deleted));

-- Tables that no owner-run (security definer) code reads or writes: forcing RLS costs nothing.
-- persons, faces, person_sites, schedules and devices are read or written by push_people,
-- pull_changes and facegate_my_site(), which run as the owner, so they are not forced.
alter table public.sites force row level security;
alter table public.access_events force row level security;
alter table public.device_heartbeats force row level security;

-- --- pull_changes ---------------------------------------------------------------------------

-- Security definer now: the table policies hide a revoked person entirely, yet the revoked site
-- must still receive the tombstone. The site filter is explicit in every branch.
create or replace function public.pull_changes(after bigint default 0, lim integer default 500)
returns jsonb
language plpgsql stable security definer set search_path = '' as $$
declare
    site uuid := public.facegate_my_site();
    result jsonb;
begin
    if site is null then
        raise exception using errcode = '42501', message = 'not a provisioned device';
    end if;
    lim := least(greatest(coalesce(lim, 500), 1), 5000);
    after := coalesce(after, 0);
    with changes as (
        (select 'schedule' as kind, s.change_no,
                jsonb_build_object('id', s.id, 'name', s.name, 'windows', s.windows,
                                   'deleted', s.deleted) as row
           from public.schedules s
          where s.site_id = site and s.change_no > after
          order by s.change_no limit lim)
        union all
        (select 'person', p.change_no,
                case when ps.deleted or p.deleted
                     then jsonb_build_object('id', p.id, 'deleted', true)
                     else jsonb_build_object(
                         'id', p.id, 'name', p.name, 'external_id', p.external_id,
                         'active', p.active, 'valid_from', p.valid_from,
                         'valid_until', p.valid_until, 'schedule_id', p.schedule_id,
                         'notes', p.notes, 'deleted', false)
                end
           from public.persons p
           join public.person_sites ps on ps.person_id = p.id and ps.site_id = site
          where p.change_no > after
          order by p.change_no limit lim)
        union all
        (select 'face', f.change_no,
                case when f.deleted or p.deleted or ps.deleted
                     then jsonb_build_object('id', f.id, 'person_id', f.person_id,
                                             'deleted', true)
                     else jsonb_build_object('id', f.id, 'person_id', f.person_id,
                                             'embedding', f.embedding, 'model', f.model,
                                             'quality', f.quality, 'deleted', false)
                end
           from public.faces f
           join public.persons p on p.id = f.person_id
           join public.person_sites ps on ps.person_id = f.person_id and ps.site_id = site
          where f.change_no > after
          order by f.change_no limit lim)
    ), page as (
        select * from changes order by change_no limit lim
    )
    select jsonb_build_object(
               'changes', coalesce(jsonb_agg(jsonb_build_object(
                   'kind', kind, 'change_no', change_no, 'row', row) order by change_no),
                   '[]'::jsonb),
               'next', coalesce(max(change_no), after),
               'more', count(*) = lim,
               'server_time', now())
      into result
      from page;
    return result;
end $$;

-- --- push_events ----------------------------------------------------------------------------

-- One pushed event as the row to store: the door's name from its device row, a person id only
-- if this site has (or had: an offline door's backlog may name a person revoked since) an access
-- row for it, and the clock check. Runs as the caller, so person_sites is read through RLS.
-- A set-returning SQL function without a SET clause, so the planner inlines it into push_events
-- (every name in it is schema-qualified; a version that was not inlined pushed half as fast).
create function public.facegate_event_row(ev jsonb, dev uuid, site uuid, door_name text)
returns setof public.access_events
language sql stable security invoker as $$
    select (ev ->> 'id')::uuid, dev, site, c.ts, door_name, ev ->> 'kind',
           case when c.seen then c.pid end,
           case when c.pid is null or c.seen then ev ->> 'person_name' end,
           (ev ->> 'distance')::real, ev ->> 'reason', (ev ->> 'track_id')::integer,
           nullif(ev -> 'details', 'null'::jsonb), now(),
           case when not c.seen then c.pid end,
           coalesce(c.ts < now() - interval '30 days' or c.ts > now() + interval '5 minutes',
                    false)
      from (select (ev ->> 'ts')::timestamptz as ts, (ev ->> 'person_id')::uuid as pid,
                   exists (select 1 from public.person_sites ps
                            where ps.person_id = (ev ->> 'person_id')::uuid
                              and ps.site_id = site) as seen) c
$$;

create or replace function public.push_events(events jsonb)
returns jsonb
language plpgsql security invoker set search_path = '' as $$
declare
    dev uuid := public.facegate_my_device_id();
    site uuid := public.facegate_my_site();
    door_name text;
    rejected jsonb := '[]'::jsonb;
    ev jsonb;
    inserted integer := 0;
    n integer;
begin
    if dev is null then
        raise exception using errcode = '42501', message = 'not a provisioned device';
    end if;
    if jsonb_typeof(events) is distinct from 'array' then
        raise exception using errcode = '22023', message = 'events must be a JSON array';
    end if;
    if jsonb_array_length(events) > 5000 then
        raise exception using errcode = '22023', message = 'at most 5000 events per call';
    end if;
    select d.name into door_name from public.devices d where d.id = dev;
    -- Fast path: the whole batch in one statement. If any row is malformed, fall back to one
    -- row at a time so that the bad rows are named and the good ones still stored.
    begin
        insert into public.access_events
            (id, device_id, site_id, ts, door, kind, person_id, person_name, distance, reason,
             track_id, details, received_at, claimed_person_id, ts_out_of_window)
        select r.id, r.device_id, r.site_id, r.ts, r.door, r.kind, r.person_id, r.person_name,
               r.distance, r.reason, r.track_id, r.details, r.received_at,
               r.claimed_person_id, r.ts_out_of_window
          from jsonb_array_elements(events) e
         cross join lateral public.facegate_event_row(e, dev, site, door_name) r
        on conflict (id) do nothing;
        get diagnostics inserted = row_count;
    exception when others then
        inserted := 0;
        for ev in select e from jsonb_array_elements(events) e loop
            begin
                insert into public.access_events
                    (id, device_id, site_id, ts, door, kind, person_id, person_name, distance,
                     reason, track_id, details, received_at, claimed_person_id,
                     ts_out_of_window)
                select r.id, r.device_id, r.site_id, r.ts, r.door, r.kind, r.person_id,
                       r.person_name, r.distance, r.reason, r.track_id, r.details,
                       r.received_at, r.claimed_person_id, r.ts_out_of_window
                  from public.facegate_event_row(ev, dev, site, door_name) r
                on conflict (id) do nothing;
                get diagnostics n = row_count;
                inserted := inserted + n;
            exception when others then
                if sqlstate in ('40001', '40P01', '55P03', '57014') then
                    raise;                   -- contention, not a bad row: the door retries
                end if;
                rejected := rejected || jsonb_build_array(jsonb_build_object(
                    'id', ev ->> 'id', 'code', sqlstate, 'error', sqlerrm));
            end;
        end loop;
    end;
    return jsonb_build_object('received', jsonb_array_length(events), 'inserted', inserted,
                              'rejected', rejected);
end $$;

-- --- push_people ----------------------------------------------------------------------------

create or replace function public.push_people(people jsonb, known_through bigint default 0)
returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
    dev uuid := public.facegate_my_device_id();
    site uuid := public.facegate_my_site();
    p jsonb;
    pid uuid;
    cur public.persons;
    known boolean;
    own_revoked boolean;
    wants_delete boolean;
    face_ids uuid[];
    accepted jsonb := '[]'::jsonb;
    conflicts jsonb := '[]'::jsonb;
    rejected jsonb := '[]'::jsonb;
begin
    if dev is null then
        raise exception using errcode = '42501', message = 'not a provisioned device';
    end if;
    if jsonb_typeof(people) is distinct from 'array' then
        raise exception using errcode = '22023', message = 'people must be a JSON array';
    end if;
    if jsonb_array_length(people) > 1000 then
        raise exception using errcode = '22023', message = 'at most 1000 people per call';
    end if;
    -- The change-number lock before any row lock, in the order every writer takes them.
    perform pg_advisory_xact_lock(7305521001);
    -- Each person in its own block: every check comes before the first write, and an error
    -- undoes that person's writes, so a refused person is never half-applied.
    for p in select value from jsonb_array_elements(people) loop
        begin
            pid := (p ->> 'id')::uuid;
            wants_delete := coalesce((p ->> 'deleted')::boolean, false);
            select * into cur from public.persons where id = pid for update;
            known := found;
            if known then
                select ps.deleted into own_revoked from public.person_sites ps
                 where ps.person_id = pid and ps.site_id = site;
                if not found then
                    raise exception using errcode = '42501',
                        message = format('person %s belongs to another site', pid);
                end if;
                if own_revoked then
                    raise exception using errcode = '42501',
                        message = format('person %s was revoked from this site by an admin; '
                                         'a door cannot restore it', pid);
                end if;
                if cur.deleted then
                    if not wants_delete then
                        raise exception using errcode = '42501',
                            message = format('person %s was deleted centrally', pid);
                    end if;
                    accepted := accepted || jsonb_build_array(jsonb_build_object(
                        'id', pid, 'central_version', cur.change_no));
                    continue;                -- already gone: nothing to do
                end if;
                if exists (select 1 from public.person_sites ps
                            where ps.person_id = pid and ps.site_id <> site
                              and not ps.deleted) then
                    raise exception using errcode = '42501',
                        message = format('person %s is shared with another site; only an '
                                         'admin may change or delete it', pid);
                end if;
                -- The central copy changed since this door last saw it: the centre wins.
                if cur.change_no is distinct from (p ->> 'base_version')::bigint then
                    conflicts := conflicts || jsonb_build_array(jsonb_build_object(
                        'id', pid, 'central_version', cur.change_no));
                    continue;
                end if;
                if not wants_delete and cur.disabled_by_admin
                        and coalesce((p ->> 'active')::boolean, true) then
                    raise exception using errcode = '42501',
                        message = format('person %s was disabled by an admin; a door cannot '
                                         're-activate it', pid);
                end if;
            end if;
            if wants_delete then
                if known then
                    update public.persons set deleted = true, updated_by = dev where id = pid;
                end if;
            else
                if (p ->> 'schedule_id') is not null and not exists (
                        select 1 from public.schedules s
                         where s.id = (p ->> 'schedule_id')::uuid and s.site_id = site
                           and not s.deleted) then
                    raise exception using errcode = '23503',
                        message = 'schedule ' || (p ->> 'schedule_id')
                                  || ' is not a central schedule of this site';
                end if;
                face_ids := array(select (x ->> 'id')::uuid
                                    from jsonb_array_elements(coalesce(p -> 'faces', '[]')) x);
                if exists (select 1 from public.faces f
                            where f.id = any(face_ids) and f.person_id <> pid) then
                    raise exception using errcode = '23505',
                        message = 'a face id belongs to another person';
                end if;
                -- Faces the door had already received and no longer has were deleted there;
                -- faces newer than the door's cursor are kept.
                update public.faces set deleted = true
                 where person_id = pid and not deleted and change_no <= coalesce(known_through, 0)
                   and id <> all(face_ids);
                insert into public.persons
                    (id, name, external_id, active, valid_from, valid_until, schedule_id, notes,
                     updated_by)
                values (pid, coalesce(p ->> 'name', ''), p ->> 'external_id',
                        coalesce((p ->> 'active')::boolean, true),
                        (p ->> 'valid_from')::timestamptz, (p ->> 'valid_until')::timestamptz,
                        (p ->> 'schedule_id')::uuid, p ->> 'notes', dev)
                on conflict (id) do update set
                    name = excluded.name, external_id = excluded.external_id,
                    active = excluded.active, valid_from = excluded.valid_from,
                    valid_until = excluded.valid_until, schedule_id = excluded.schedule_id,
                    notes = excluded.notes, updated_by = excluded.updated_by;
                -- Only ever this site's row, and never a revoked one brought back (checked above).
                insert into public.person_sites (person_id, site_id) values (pid, site)
                on conflict (person_id, site_id) do nothing;
                insert into public.faces (id, person_id, embedding, model, quality)
                select (x ->> 'id')::uuid, pid,
                       array(select v::real from jsonb_array_elements_text(x -> 'embedding') v),
                       x ->> 'model', (x ->> 'quality')::real
                  from jsonb_array_elements(coalesce(p -> 'faces', '[]')) x
                on conflict (id) do nothing;
            end if;
            accepted := accepted || jsonb_build_array(jsonb_build_object(
                'id', pid,
                'central_version', (select change_no from public.persons where id = pid)));
        exception when others then
            if sqlstate in ('40001', '40P01', '55P03', '57014') then
                raise;                       -- contention, not a bad row: the door retries
            end if;
            rejected := rejected || jsonb_build_array(jsonb_build_object(
                'id', p ->> 'id', 'code', sqlstate, 'error', sqlerrm));
        end;
    end loop;
    return jsonb_build_object('accepted', accepted, 'conflicts', conflicts,
                              'rejected', rejected);
end $$;

-- --- heartbeat ------------------------------------------------------------------------------

create or replace function public.heartbeat(status jsonb default '{}'::jsonb)
returns jsonb
language plpgsql security invoker set search_path = '' as $$
declare
    dev uuid := public.facegate_my_device_id();
    site uuid := public.facegate_my_site();
    size integer;
begin
    if dev is null then
        raise exception using errcode = '42501', message = 'not a provisioned device';
    end if;
    if jsonb_typeof(status) is distinct from 'object' then
        raise exception using errcode = '22023', message = 'status must be a JSON object';
    end if;
    size := octet_length(status::text);
    if size > 65536 then
        raise exception using errcode = '22023',
            message = format('status is %s bytes; at most 65536', size);
    end if;
    insert into public.device_heartbeats (device_id, site_id, ts, status)
    values (dev, site, now(), status)
    on conflict (device_id) do update
        set ts = excluded.ts, status = excluded.status, site_id = excluded.site_id;
    return jsonb_build_object('server_time', now());
end $$;

-- Supabase lets anon and authenticated execute every new function in public by default.
revoke all on function public.facegate_person_writer(),
    public.facegate_event_row(jsonb, uuid, uuid, text)
    from public, anon, authenticated, service_role;
grant execute on function public.facegate_event_row(jsonb, uuid, uuid, text) to authenticated;

notify pgrst, 'reload schema';
